"""The gateway's one state database, and what is built on it.

- `database.py`: the database itself, an SQLite file in the state folder (`<state_dir>/state.db`),
  opened by every worker process of the machine: WAL, so readers (the `usage` command, the API,
  another worker) never wait for a writer; one writer thread per process that commits whatever is
  queued in one transaction (group commit), so a request waits for its row to be durable without
  its event loop ever blocking on a lock.
- `responses.py`: the Responses store, the one place the gateway keeps prompt and answer text
  (chaining by previous_response_id needs it), with its own switch, TTL and bound.
- `spend.py`: the spend ledger, one row per request (cost, tokens, key name, team, models, reason,
  status; never text or a key), its daily totals, and the reports and spend per period read from them.
- `periods.py`: days, weeks and months in the configured time zone, and `--since`.
- `replicas.py`: Redis as the engine across replicas: stored responses any replica can read, and
  every replica's daily spend totals, copied into every replica's database.
"""
