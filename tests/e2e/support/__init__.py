"""Helpers of the end-to-end tests: processes, the hub configuration, REST and SSE clients."""
