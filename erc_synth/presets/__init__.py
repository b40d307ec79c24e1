"""Built-in preset files (YAML); copy one to make your own."""
