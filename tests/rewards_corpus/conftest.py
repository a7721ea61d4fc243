# The corpus is data for tests/test_reward_forms.py: never imported (some files are broken on purpose).
collect_ignore_glob = ["*/*.py"]
