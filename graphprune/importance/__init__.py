"""importance"""
