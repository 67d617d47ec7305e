"""Online bin packing policy package (the editable code)."""
