"""Pull workers: claim runs from queues and execute them in a pool of child processes."""
