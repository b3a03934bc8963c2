"""twistd plugins ``blockhub-gateway`` and ``blockhub-hub``.

Only option parsing lives here; the package is imported inside ``makeService`` so
``twistd --help`` stays fast and a broken import in one service cannot hide the other.
"""
