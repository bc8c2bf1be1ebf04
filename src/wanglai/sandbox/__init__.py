"""SANDBOXES of the outside parties money flows through — a bank gateway (``wanglai sandbox
bank``) and the operator's carrier billing (``wanglai operator-sandbox``) — for development and
tests. They are not real partners: nothing is charged and nothing is paid. Each runs as its own
process."""
