"""`vialflow console`: the French web console of support advisers, operators and admins.

Another entry point: each page and each API route calls the services the CLI calls, and
translates their answers into French pages or the CLI's JSON objects.
"""
