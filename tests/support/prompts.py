"""Prompts whose routing the tests rely on: the shipped difficulty score rates HARD well above the
default threshold (share 0.25) and each of EASY well below it (tests/test_difficulty.py checks)."""

HARD = ("A shop sells pens at 3 dollars each and notebooks at 5 dollars each. Maria buys twice as many pens "
        "as notebooks and pays 44 dollars. How many notebooks did she buy?")
EASY = ("thanks", "looks good", "and add a test")
