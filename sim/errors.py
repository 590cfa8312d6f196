"""Exceptions for mistakes in what the user gave drainsim; the CLI reports them with exit status 2."""


class UserInputError(Exception):
    """Invalid input from the user: a scenario, a trace, an option or an output path."""


class ScenarioError(UserInputError):
    """A scenario file, or a value overriding one of its keys, is invalid."""


class ResultsError(UserInputError):
    """A results folder is missing, incomplete or not written by drainsim."""
