"""A real local Kubernetes 1.20 control plane for the lab and the tests (see docs/k8s-lab.md)."""
