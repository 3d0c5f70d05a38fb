"""The identity domain: pure rules, no framework, driver or crypto-library imports."""
