"""gosf's benchmark: acknowledged round trips per second and memory per idle connection.

Run it with ``python -m benchmarks.run`` (``--quick`` for a smoke run); see
``docs/performance.md`` for what it measures and the latest numbers.

Modules:

* :mod:`benchmarks.servers`: the three ASGI apps (gosf, python-socketio, a
  bare websocket echo) and ``main()`` serving one of them with hypercorn.
* :mod:`benchmarks.wsclient`: a minimal websocket client on asyncio protocols
  (the load generator's fast path).
* :mod:`benchmarks.loadgen`: the load generator, a process of its own.
* :mod:`benchmarks.procs`: starting, watching and stopping child processes.
* :mod:`benchmarks.run`: the driver: every server, worker class and client
  count, the table of ratios and the JSON results.

The broadcast benchmark (``python -m benchmarks.broadcast``: deliveries per
second to 1,000 clients over 2 workers joined by Redis) has its own:

* :mod:`benchmarks.broadcast_servers`: the apps (gosf with its Redis broker
  or local, python-socketio with ``AsyncRedisManager``), one worker each.
* :mod:`benchmarks.broadcast_loadgen`: the receiving clients and the sender.
* :mod:`benchmarks.broadcast`: the driver: redis-server, the workers, the
  rounds, the tables and the JSON results.
"""
