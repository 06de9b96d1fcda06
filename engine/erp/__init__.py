"""The company data model of the ERP operations: the data document, money and VAT, the
rules of the operations, and the ports to the company's data and to printing.

Imports no adapter; :mod:`engine.adapters.erp_sqlalchemy` implements the gateway.
"""
