"""The GOSF application layer: ``gosf.App``, its request cycle, hooks, plugins,
microservices, and serving it.
"""
