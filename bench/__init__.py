"""
The project's benchmark: ``python -m bench run`` (see docs/performance.md).

bench/loadgen.c is the load generator (C, epoll; compiled at run time with the system compiler),
bench/servers.py starts the servers under test, bench/scenarios.py runs one scenario against one
server, bench/cli.py runs the servers round by round (the order rotated each round) and prints the
JSON report, bench/summary.py decides which runs failed and takes medians with their spread,
bench/pinning.py puts the server and the load generator on separate CPUs, bench/cluster.py
runs our server as several processes over PostgreSQL and Redis (the cluster comparison), bench/provenance.py
records the commit, command and host, bench/tables.py and bench/plot.py render a report, and
bench/baselines/threaded.py is the origin's threaded design. The older
bench/commit_cost.py (what committing before fan-out costs) is ``python -m bench commit-cost``.
"""
