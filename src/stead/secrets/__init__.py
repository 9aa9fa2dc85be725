"""Secrets: values set with `stead secrets set`, stored encrypted, read in flows with
`stead.secret("NAME")`. `crypto.py` encrypts and decrypts; `reveal.py` is `secret()`.

Kept light: `import stead` imports `reveal.py`, and `cryptography` loads on first use only.
"""
