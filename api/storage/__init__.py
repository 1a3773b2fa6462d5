"""Repository layer: the billing catalog as versioned rows in the warehouse."""
