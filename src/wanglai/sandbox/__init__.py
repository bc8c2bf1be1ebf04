"""SANDBOXES of the outside parties money flows through — a bank gateway and the operator's
billing system — for development and tests. They are not real partners: nothing is charged
and nothing is paid. Each runs as its own process (``wanglai sandbox bank|billing``)."""
