"""The scenario's SQL on the lab server: python sql.py '<conninfo json>' <action>; prints JSON."""
import json
import sys

import psycopg

conninfo, action, database = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
with psycopg.connect(**conninfo, dbname="postgres", autocommit=True) as admin:
    names = [row[0] for row in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                             (database + "%",))]
    if action in ("create", "drop"):
        for name in names:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        names = []
    if action == "create":
        admin.execute(f'CREATE DATABASE "{database}"')
if action == "create":
    with psycopg.connect(**conninfo, dbname=database, autocommit=True) as conn:
        conn.execute("CREATE TABLE vital_signs (id bigserial PRIMARY KEY, heart_rate int);"
                     "CREATE TABLE alarms (id bigserial PRIMARY KEY, level text);"
                     "INSERT INTO vital_signs (heart_rate) SELECT 60 + g % 40 FROM generate_series(1, 2000) g;"
                     "INSERT INTO alarms (level) SELECT 'warning' FROM generate_series(1, 20)")
counts = {}
if action in ("add_rows", "count"):
    with psycopg.connect(**conninfo, dbname=database, autocommit=True) as conn:
        if action == "add_rows":
            conn.execute("INSERT INTO vital_signs (heart_rate) SELECT 70 FROM generate_series(1, 300)")
        for table in ("vital_signs", "alarms"):
            counts[f"public.{table}"] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
print(json.dumps({"databases": names, "row_counts": counts}))
