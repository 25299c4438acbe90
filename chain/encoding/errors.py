"""The one error type every decoder of untrusted bytes raises."""


class DecodeError(ValueError):
    """Bytes or text that do not form a valid value; the message says what is wrong and where."""
