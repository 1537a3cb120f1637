"""Operations: health and metrics, liveness, the delivery lock, progress, status reports.

Nothing here imports `storage`: whatever needs the store arrives as a callable from
`bot/app.py`, so these modules stay usable from the core and testable on their own.
"""
