"""The CDK app's layer content."""


def double(n):
    return 2 * n
