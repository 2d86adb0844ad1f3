"""The dual-pods controller and the launcher populator (one leader-elected process)."""

__all__: list[str] = []
