class DomainError(Exception):
    """A business rule said no. Views show ``message`` to the user; it never carries a stack trace."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
