"""tunix-package: the Kaggle packager and evidence validation."""
