"""Request and response shapes of the API (Lago v1), separate from storage rows."""
