"""Remote execution and caching over REAPI v2: channel, CAS, client, worker, cluster."""
