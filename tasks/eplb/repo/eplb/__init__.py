"""Expert-parallel load balancer (EPLB) policy package."""
