"""The parts of the store interface, one concept each: runs and steps, queues and leases,
limits and slots, deployments and schedules, retention, API keys. Each module holds its part's
protocol (the verbs) and the records those verbs carry; `stead.store.base.Store` is all of them
together, and every backend implements every part.
"""
