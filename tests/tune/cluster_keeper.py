"""Keeps a multi-node Ray cluster on this machine for tests/tune/test_cluster.py, in a process of
its own (so its Ray settings never mix with the test process's own Ray).

``ray.cluster_utils.Cluster``: a head with no CPUs (it only runs drivers) and worker nodes with
two CPUs and one fake GPU each, every node on its own loopback address. Commands on stdin, one
per line, each answered with one line on stdout: ``add <ip>``, ``kill <ip>`` (no graceful
shutdown: the node's raylet and workers die at once), ``quit``. The first line out is the head's
address.
"""

from __future__ import annotations

import os
import sys

# Loopback addresses throughout: with Ray's "cluster" mode off, node IPs are not rewritten to
# this machine's external address, so each node keeps the 127.0.0.x it is given.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from ray.cluster_utils import Cluster


def main() -> None:
    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={"num_cpus": 0, "num_gpus": 0, "node_ip_address": "127.0.0.1"},
    )
    nodes = {}

    def add(ip: str) -> None:
        nodes[ip] = cluster.add_node(num_cpus=2, num_gpus=1, node_ip_address=ip)
        cluster.wait_for_nodes()

    for ip in sys.argv[1:]:
        add(ip)
    print(cluster.address, flush=True)
    for line in sys.stdin:
        command, _, ip = line.strip().partition(" ")
        if command == "add":
            add(ip)
        elif command == "kill":
            cluster.remove_node(nodes.pop(ip), allow_graceful=False)
        elif command == "quit":
            break
        print("ok", command, ip, flush=True)
    cluster.shutdown()


if __name__ == "__main__":
    main()
