"""The one-file binary's entry point: the same `trainer` command the console script runs."""

import multiprocessing

from trainer_cli.main import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen program must opt in before any child process starts
    main()
