# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Paired with plugins/module_utils/s3.py s3_argument_spec(); a unit test keeps them equal.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  s3:
    description:
      - Where backup sets are kept in S3 (or an S3-compatible store). A set lives under
        C(<prefix>/<YYYY>/<MM>/<DD>/<backup id>/); its C(manifest.json) is uploaded last, so a set
        without one is an unfinished upload.
      - Credentials come from these options, else from the usual C(AWS_*) environment variables and
        boto3's own chain (profile, instance role).
      - M(streamops.maintenance.backup_verify) with a local C(path) finds the set's copy where the set's
        manifest says it was uploaded (its C(s3.bucket) and C(s3.prefix)), so the options the backup used
        verify it unchanged; these options then give the endpoint and credentials.
    type: dict
    suboptions:
      bucket:
        description:
          - Bucket name.
          - For M(streamops.maintenance.backup_verify) with a local C(path), the bucket named in the set's
            manifest is read instead.
        type: str
        required: true
      prefix:
        description:
          - Key prefix of this estate's backups, without a leading or trailing C(/).
          - For M(streamops.maintenance.backup_verify) without a local C(path), the prefix of the one set
            to verify, ending with its backup id. With a C(path), not used (the set's manifest has the prefix).
        type: str
        default: ""
      endpoint_url:
        description: URL of an S3-compatible endpoint. Falls back to E(AWS_ENDPOINT_URL), then E(S3_ENDPOINT_URL).
        type: str
      region:
        description: Region. Falls back to E(AWS_REGION), then E(AWS_DEFAULT_REGION).
        type: str
      access_key:
        description: Access key id. Falls back to E(AWS_ACCESS_KEY_ID).
        type: str
      secret_key:
        description: Secret access key. Falls back to E(AWS_SECRET_ACCESS_KEY). Never logged.
        type: str
      session_token:
        description: Session token of temporary credentials. Falls back to E(AWS_SESSION_TOKEN).
        type: str
      validate_certs:
        description: Verify the endpoint's TLS certificate.
        type: bool
        default: true
      server_side_encryption:
        description: Ask S3 to encrypt each object at rest.
        type: str
        choices: [AES256, "aws:kms"]
      kms_key_id:
        description: KMS key for O(s3.server_side_encryption=aws:kms); the bucket's default key when unset.
        type: str
      storage_class:
        description: Storage class of the uploaded objects, for example C(STANDARD_IA).
        type: str
        default: STANDARD
      multipart_chunk_mb:
        description: Files larger than this many MiB are uploaded in parts of this size (at least 5).
        type: int
        default: 64
      max_concurrency:
        description: Parts uploaded at the same time.
        type: int
        default: 4
      connect_timeout:
        description: Seconds to wait for a connection to the endpoint before the attempt fails.
        type: float
        default: 10
      read_timeout:
        description:
          - Seconds to wait for an answer to one request (a part, a listing) before the attempt fails.
          - With O(s3.max_attempts), the bound on how long an endpoint that stops answering holds a run.
        type: float
        default: 60
      max_attempts:
        description:
          - Attempts of one request, the first included, when the endpoint answers an error S3 clients retry
            (500, 503, C(SlowDown)), breaks the connection or times out. Falls back to E(AWS_MAX_ATTEMPTS).
          - A failed upload removes what it wrote and aborts its multipart uploads; the local set is kept.
        type: int
        default: 5
"""
