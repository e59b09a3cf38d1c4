"""
The project's benchmark: ``python -m bench run`` (see docs/performance.md).

bench/loadgen.c is the load generator (C, epoll; compiled at run time with the system compiler),
bench/servers.py starts the servers under test, bench/scenarios.py runs one scenario against one
server, bench/cli.py pairs the servers round by round and prints the JSON report, bench/plot.py
draws docs/fanout.png, and bench/baselines/threaded.py is the origin's threaded design. The older
bench/commit_cost.py (what committing before fan-out costs) is ``python -m bench commit-cost``.
"""
