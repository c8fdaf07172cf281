"""PostgreSQL access: the pool, migrations and the queries each part of the product makes."""
