"""Host side of running untrusted work: sandboxes, candidate jobs and executors."""
