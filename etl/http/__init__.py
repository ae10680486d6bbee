"""HTTP plumbing shared by every source: the session, errors, retries and rate limits."""
