"""The collection's execution environment (EE), built here for real and offline.

``python -m lab.ee build`` (``make ee``): a Debian bookworm base image made with
debootstrap (base.py), wheels and a local .deb repository fetched on the host
(offline.py), the collection tarball and ``ansible-builder create`` with checks
on what it generated (context.py), then ``docker build --network none``
(image.py). ``python -m lab.ee context`` (``make ee-context``) writes only the
build context, for a build on AWX's own base image (docs/execution-environment.md).
"""
