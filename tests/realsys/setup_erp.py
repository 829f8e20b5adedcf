"""Builds the Tryton company Ferry's end-to-end tests post into (run in-process,
with the server stopped). Usage: python setup_erp.py trytond.conf DB REST_KEY

- company "Ferry Test Consulting" in USD, the minimal chart of accounts
- calendar fiscal years 2026 and 2027 with monthly periods and invoice sequences
- payment term "Net 0", employee "Integration Bot" linked to admin, employee "Jane Doe"
- service products (unit Hour) with codes the redmine-tryton template maps to:
  CONSULT and DESIGN (category "Services", revenue 4.1.2), and NOACCT (no
  accounting category: invoice lines for it have no revenue account, which
  Tryton refuses; the validation-error scenario uses it)
- invoice payment method "Bank transfer" (cash journal)
- a REST user application key for admin
"""
import datetime as dt
import sys
from decimal import Decimal

from proteus import Model, config as pconfig
from trytond.modules.account.tests.tools import (
    create_chart, create_fiscalyear, get_accounts)
from trytond.modules.account_invoice.tests.tools import (
    create_payment_term, set_fiscalyear_invoice_sequences)
from trytond.modules.company.tests.tools import create_company, get_company

conf_file, dbname, rest_key = sys.argv[1], sys.argv[2], sys.argv[3]
pconfig.set_trytond(dbname, config_file=conf_file)

Party = Model.get('party.party')
firm = Party(name='Ferry Test Consulting')
firm.save()
create_company(party=firm, currency='USD')
create_chart()
for year in (2026, 2027):
    fy = set_fiscalyear_invoice_sequences(create_fiscalyear(
        today=(dt.date(year, 1, 1), dt.date(year, 12, 31))))
    fy.click('create_period')
accounts = get_accounts()

term = create_payment_term()
term.name = 'Net 0'
term.save()

Employee = Model.get('company.employee')
User = Model.get('res.user')
bot = Party(name='Integration Bot')
bot.save()
employee = Employee(party=bot, company=get_company())
employee.save()
admin, = User.find([('login', '=', 'admin')])
admin.employees.append(employee)
admin.employee = employee
admin.save()
# An employee for one of the people who log time in Redmine (Jane Doe); time of
# people without one goes on the Integration Bot's timesheet.
jane = Party(name='Jane Doe')
jane.save()
Employee(party=jane, company=get_company()).save()

Account = Model.get('account.account')
services, = Account.find([('code', '=', '4.1.2')])
Category = Model.get('product.category')
category = Category(name='Services', accounting=True,
                    account_revenue=services, account_expense=accounts['expense'])
category.save()
Uom = Model.get('product.uom')
hour, = Uom.find([('name', '=', 'Hour')])
Template = Model.get('product.template')
for code, name, price, cat in [('CONSULT', 'Consulting hour', '150', category),
                               ('DESIGN', 'Design hour', '120', category),
                               ('NOACCT', 'Unconfigured hour', '100', None)]:
    template = Template(name=name, type='service', default_uom=hour,
                        list_price=Decimal(price), code=code)
    if cat:
        template.account_category = cat
    template.save()

Journal = Model.get('account.journal')
cash, = Journal.find([('type', '=', 'cash')], limit=1)
Method = Model.get('account.invoice.payment.method')
Method(name='Bank transfer', journal=cash, debit_account=accounts['cash'],
       credit_account=accounts['cash']).save()

App = Model.get('res.user.application')
App(user=admin, application='rest', key=rest_key).save()   # state: validated
print('tryton setup done')
