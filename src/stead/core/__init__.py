"""The engine: flows, tasks, states, retries, timeouts, results and logs. Imports no web code."""
