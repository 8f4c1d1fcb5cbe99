"""CSV result parts → records: the value kinds and their grammar (``kinds``), the Python reader
that is the reference (``reader``), the columnar path that gives the same records faster
(``columnar``), and BATCH mode's files (``batches``).
"""
