"""The warehouse: engine, bulk loads, partition replaces and the SQL model runner."""
