"""Code shared through the hello app's local layer (Lambda puts <layer>/python on sys.path)."""


def count_items(items):
    return len(items)
