"""``python -m lash_kernel``: the ``lash`` command line."""

from lash_kernel.cli import main

if __name__ == "__main__":
    main()
