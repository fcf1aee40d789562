#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: docker_cleanup
short_description: Remove old stopped containers, unused images and build cache; volumes only when named
version_added: 0.1.0
description:
  - A safe replacement for C(docker system prune -f --volumes), which deletes every volume no running container
    mounts, a stopped database's data with it.
  - Removes stopped containers (C(exited), C(created), C(dead)) created more than O(older_than) ago, never their
    volumes; running, paused and restarting containers are never touched.
  - Removes dangling images (no tag) and, with O(unused_images), every unused image, created more than
    O(older_than) ago.
  - Never removes an image that a container uses (running or stopped; a container removed in the same run no longer
    counts), the parent of another image, nor an image a compose blue/green app of O(blue_green) may roll back
    to. Such an image is an V(unchanged) record that says why.
  - Prunes the build cache with O(build_cache), entries unused for O(older_than).
  - Removes a volume only when it is named in O(volumes), exists, and no container (running or stopped) mounts it;
    a mounted or missing one is a V(skipped) record (naming the containers). No pattern, no "all".
  - Everything is planned from one read of the engine's C(/system/df) (the data of C(docker system df)), so check
    mode lists exactly what a real run would remove, with the bytes each frees. A real run measures
    C(/system/df) again afterwards and reports the bytes freed.
  - An item whose removal fails (an image a container created meanwhile uses, HTTP 409) is V(failed); the rest
    go on, and the task fails naming what was and was not removed. An image with several tags goes whole or
    keeps every tag.
  - A blue/green state file that cannot be read fails the task before anything is removed.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.docker
attributes:
  check_mode:
    support: full
    details:
      - Lists every container, image, volume and the build cache that would go, with its size, and the total.
  diff_mode:
    support: full
    details:
      - The diff lists what goes (or would go).
  idempotent:
    support: full
    details:
      - Once the old items are gone a second run finds nothing to remove.
options:
  older_than:
    description:
      - Only containers and images created, and build cache entries last used, more than this long ago go.
      - A duration as the collection writes them (V(24h), V(7d), V(90m), V(PT12H)); V(0) takes every age.
    type: str
    default: 24h
  unused_images:
    description:
      - Also remove tagged images no container uses (not only dangling ones).
    type: bool
    default: false
  build_cache:
    description:
      - Prune the build cache entries not in use and unused for O(older_than).
    type: bool
    default: false
  volumes:
    description:
      - Names of the volumes that may be removed; no other volume is ever removed.
      - Each must exist and no container, running or stopped, may mount it; else it is a V(skipped) record saying
        so (naming the containers). Patterns and V(all) are refused.
    type: list
    elements: str
    default: []
  blue_green:
    description:
      - Compose blue/green apps (deployed by M(streamops.maintenance.blue_green_deploy)) whose images stay.
      - Each entry has C(app), C(project_dir) (the state file C(.streamops-blue-green-<app>.json) is read there) or
        C(state_file), and optionally C(image), the repository without tag; without it the versions are protected
        as tags of any repository.
      - Protected are the version of each kept colour, the live version and the versions of the last
        O(history_versions) history entries.
      - A state file that is missing or cannot be read fails the task before anything is removed; except that an
        app with C(image) whose C(project_dir) exists but holds no state file yet (never deployed by
        M(streamops.maintenance.blue_green_deploy)) keeps every tag of that repository.
    type: list
    elements: dict
    default: []
  history_versions:
    description:
      - How many of the newest blue/green history entries protect their versions (beside the kept and live ones).
    type: int
    default: 3
  include_labels:
    description:
      - Only containers and images carrying every one of these labels (V(key) or V(key=value)) are considered;
        the others are left out without a record (counted in the summary).
    type: list
    elements: str
    default: []
  exclude_labels:
    description:
      - Containers and images carrying any of these labels (V(key) or V(key=value)) are kept (V(unchanged)).
    type: list
    elements: str
    default: [org.streamops.keep]
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Weekly Docker cleanup, keeping what the web app may roll back to
  module_defaults:
    group/streamops.maintenance.docker: "{{ docker_login }}"
  streamops.maintenance.docker_cleanup:
    older_than: 7d
    unused_images: true
    build_cache: true
    blue_green:
      - app: vitalstream-web
        project_dir: /opt/vitalstream/deploy
        image: vitalstream/web
    volumes: [vitalstream-tmp-cache]
  register: docker_cleanup

- name: What would go, without removing anything
  streamops.maintenance.docker_cleanup:
    older_than: 24h
  check_mode: true
"""

RETURN = r"""
changed:
  description: V(true) when something was removed (would be, in check mode).
  returned: always
  type: bool
  sample: true
msg:
  description: What was removed, the bytes freed, and what was not removed and why.
  returned: always
  type: str
  sample: "removed 2 item(s) on unix:///var/run/docker.sock (120.0 MB): container old-job, image <none> 0123456789ab"
records:
  description:
    - One per container, image, listed volume and build cache looked at, then the summary; see C(docs/records.md).
    - C(container <name>) action V(remove_container), C(image <tags or <none> id>) action V(remove_image),
      C(volume <name>) action V(remove_volume), C(build cache) action V(prune_build_cache); V(done) (V(planned) in
      check mode) with the bytes, V(unchanged) when protected (C(detail) says by what), V(skipped) (a listed volume
      in use or missing, an image whose container was not removed), V(failed) (the engine refused; C(detail) says why).
    - C(after) has the item (C(container), C(image), C(volume)...), C(bytes) and, when done, C(freed_bytes).
    - The summary C(docker <engine>), action V(cleanup), has C(before) and C(after) with C(containers_bytes),
      C(images_bytes), C(volumes_bytes), C(build_cache_bytes), C(total_bytes) from C(/system/df) (after the run;
      the estimate in check mode), C(after.freed_bytes) and C(after.left_out), the counts of what was not
      considered (running containers, too young, not matching the labels, volumes not listed).
  returned: always
  type: list
  elements: dict
  sample:
    - name: container old-job
      action: remove_container
      status: done
      detail: "removed (exited, older than 1d), 12.0 kB"
      before: null
      after: {container: old-job, state: exited, image: "busybox:1.36", image_id: "sha256:0123", bytes: 12288,
              freed_bytes: 12288}
      seconds: 0.05
    - name: image vitalstream/web:2026.11.1
      action: remove_image
      status: unchanged
      detail: kept colour green of app vitalstream-web
      before: null
      after: {image: "vitalstream/web:2026.11.1", id: "sha256:4567", tags: ["vitalstream/web:2026.11.1"],
              created: 1764000000, bytes: 1048576}
      seconds: null
    - name: docker unix:///var/run/docker.sock
      action: cleanup
      status: done
      detail: "removed 1 item(s); docker system df 1.2 GB -> 1.1 GB, 12.0 kB freed; kept 1"
      before: {containers_bytes: 12288, images_bytes: 1288490188, volumes_bytes: 0, build_cache_bytes: 0,
               total_bytes: 1288502476}
      after: {containers_bytes: 0, images_bytes: 1288490188, volumes_bytes: 0, build_cache_bytes: 0,
              total_bytes: 1288490188, freed_bytes: 12288, left_out: {containers_running: 3}}
      seconds: 0.4
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.docker_cleanup import (
    DEFAULT_EXCLUDE_LABELS,
    run_docker_cleanup,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.docker_conn import (
    DOCKER_IMPORT_ERROR,
    docker_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit


def argument_spec() -> dict:
    return dict(
        docker_argument_spec(),
        older_than=dict(type="str", default="24h"),
        unused_images=dict(type="bool", default=False),
        build_cache=dict(type="bool", default=False),
        volumes=dict(type="list", elements="str", default=[]),
        blue_green=dict(type="list", elements="dict", default=[]),
        history_versions=dict(type="int", default=3),
        include_labels=dict(type="list", elements="str", default=[]),
        exclude_labels=dict(type="list", elements="str", default=list(DEFAULT_EXCLUDE_LABELS)),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_docker_cleanup, {"docker": DOCKER_IMPORT_ERROR})


if __name__ == "__main__":
    main()
