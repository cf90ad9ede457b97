"""The statements the hot paths run, written out as SQL text, made once per shape from the models'
`_meta` and run with `connection.cursor()`: built by the ORM, these cost more Python than the
database took to run them. Rows become instances through `Model.from_db`; nothing here depends on
how the ORM builds queries. `tests/test_sql.py` holds each statement to what the plain ORM gives.

By who uses them:
- `tokens`: the API's authentication, the token's user with its permissions in one query;
- `lock`: one job's transition (jobs.services.one), its lock with all its answer needs;
- `writes`: every transition's compare-and-set UPDATE and its INSERTs (jobs.services.writes);
- `parts`: what the others build statements from.
"""
