"""CIS node items read on a node (docs/k8s-node.md): the kubelet's configuration file and flags, the
permissions and ownership of its files, the container runtime's configuration, and the control
plane's flags where its static pod manifests or processes are present.

- :mod:`.result`: one item's verdict (pass, fail, warn, not-applicable) with its evidence;
- :mod:`.reader`: a node's filesystem under a root directory: files, YAML/TOML with lines, the
  flags of a running process, a systemd unit and its drop-ins, or a static pod's command;
- :mod:`.flags`: the rules a flag or configuration setting is judged by (shared by every component);
- :mod:`.kubelet`, :mod:`.controlplane`, :mod:`.runtimes`: the items of each component;
- :func:`.run.check_node`: every item, in CIS order.
"""
