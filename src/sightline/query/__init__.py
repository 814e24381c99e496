"""The query layer: what each number means, rendered to the store's SQL."""
