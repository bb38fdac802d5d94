# Bursar's pages in English. Every key here must also be in zh-Hans.ftl and zh-Hant.ftl.

skip-to-content = Skip to content
nav-label = Main
nav-language = Language
nav-dashboard = Dashboard
nav-buy = Buy credits
nav-orders = Orders
nav-transactions = History
nav-settings = Settings
nav-merchant = Merchant
nav-sign-in = Sign in
nav-register = Sign up
nav-sign-out = Sign out
footer-note = Bursar · prepaid credits, accounted to the last unit
never = Never

home-title = Welcome
home-heading = Credits for everything you do here
home-lead = Buy credits once, spend them on the service, and see every credit that comes and goes.
home-get-started = Create an account
home-go-dashboard = Go to your dashboard
home-packages = Packages
home-no-packages = No packages are on sale yet. Please check back soon.
home-buy-this = Buy this

field-email = Email
field-password = Password
field-display-name = Name (optional)
field-current-password = Current password
field-new-password = New password
field-language = Language
field-time-zone = Time zone
field-quantity = Quantity
field-coupon = Coupon code (optional)

login-title = Sign in
login-submit = Sign in
login-no-account = New here?
login-forgot = Forgot your password? Ask for a one-time sign-in code in the app, then set a new password in Settings.
login-wrong = The email or the password is wrong.
login-suspended = This account is suspended. Please contact support.
login-too-many = Too many attempts. Please wait a minute and try again.

register-title = Create your account
register-submit = Create account
register-have-account = Already have an account?
register-account-type = Account type
register-as-member = Member: buy and spend credits
register-as-merchant = Merchant: list products that members redeem with points
register-email-invalid = Enter an email address such as name@example.com.
register-email-taken = An account with this email already exists. Sign in instead.
register-password-hint = At least 8 characters.
register-password-rule = The password must be 8 to 256 characters.
register-name-rule = The name must be at most 100 characters.

dashboard-title = Dashboard
dashboard-hello = Hello, { $name }
dashboard-balance = Balance
dashboard-available = Available to spend
dashboard-credits-unit = credits
dashboard-held = { $credits } held for payments in progress
dashboard-grants = Your credits by source
dashboard-no-grants = You have no credits yet. Buy a package to get started.
dashboard-recent = Recent activity
dashboard-no-activity = Nothing has happened on your account yet.
dashboard-all-activity = See all activity

col-source = Source
col-remaining = Remaining
col-expires = Expires
col-when = Date
col-kind = Type
col-amount = Amount
col-balance-after = Balance after
col-item = Item
col-total = Total
col-status = Status

source-purchase = Purchased
source-bonus = Bonus
source-allowance = Subscription allowance
source-gift = Gift
source-refund = Refund
source-adjustment = Adjustment

kind-purchase = Purchase
kind-bonus = Bonus
kind-spend = Spent
kind-refund = Refund
kind-redemption = Redemption
kind-redemption_refund = Redemption refunded
kind-allowance = Daily allowance
kind-expiry = Expired
kind-gift = Gift
kind-adjustment = Adjustment
kind-auto_topup = Automatic top-up
kind-clawback = Taken back after a refund

status-pending = Waiting for payment
status-paid = Paid
status-failed = Failed
status-cancelled = Cancelled
status-expired = Expired
status-refunded = Refunded

provider-sandbox = Test card (sandbox)
provider-stripe = Card (Stripe)
provider-alipay = Alipay
provider-wechatpay = WeChat Pay
provider-ecpay = ECPay
provider-bank_transfer = Bank transfer

buy-title = Buy credits
buy-choose-package = Choose a package
buy-choose-provider = Pay with
buy-credits-count = { $credits } credits
buy-bonus-count = { $credits } bonus
buy-check-price = Check price
buy-continue = Continue to payment
buy-subtotal = Subtotal
buy-discount = Discount
buy-total = Total
buy-you-get = You get
buy-pick-first = Choose a package to see the price.
buy-coupon-unusable = This coupon cannot be used for this order.
buy-quantity-rule = The quantity must be between 1 and 1000.
buy-package-missing = This package is no longer on sale.
buy-package-required = Choose a package.
buy-provider-required = Choose how to pay.
buy-provider-unusable = This payment method cannot take this order.
buy-provider-down = The payment provider cannot be reached right now. Nothing was charged; please try again.
buy-failed = The order could not be placed. Nothing was charged; please try again.

orders-title = Your orders
orders-empty = You have no orders yet.
order-title = Order
order-provider = Payment
order-reason = Reason
order-number = Order number
order-transfer = Transfer { $amount } quoting the reference { $reference }. Your credits arrive once the money is confirmed.
order-transfer-account = Receiving account: { $account }
order-scan = Scan to pay
order-pay-now = Pay now
order-receipt = Receipt
order-back = Back to orders

receipt-title = Receipt { $number }
receipt-tax-id = Tax ID { $id }
receipt-issued = Issued { $when }
receipt-buyer = Billed to { $email }
receipt-unit-price = Unit price
receipt-refunded = Refunded

history-title = Transaction history
history-all-kinds = All types
history-from = From
history-to = To
history-filter = Filter
history-csv = Download CSV
history-empty = No transactions match these filters.

pager-label = Pages
pager-older = Older

settings-title = Settings
settings-profile = Profile
settings-save = Save
settings-saved = Your settings are saved.
settings-zone-default = The service's time zone
settings-zone-invalid = Choose a time zone from the list.
settings-password = Password
settings-password-note = Changing your password signs you out everywhere else.
settings-change-password = Change password
settings-current-wrong = The current password is wrong.
settings-password-saved = Your password is changed. Other sessions have been signed out.

error-status = Error { $status }
error-back = Back to safety
error-not-found-title = Page not found
error-not-found = There is nothing at this address. Check the link, or start again from the home page.
error-forbidden-title = Not allowed
error-forbidden = Your account cannot open this page.
error-csrf-title = Form expired
error-csrf = This form was too old or did not come from this site, so nothing was changed. Go back, reload the page and try again.
error-too-large-title = Too much data
error-too-large = The form sent more data than this page accepts.
error-too-many-title = Too many attempts
error-too-many = Please wait a minute and try again.
error-internal-title = Something went wrong
error-internal = We could not finish this. Nothing was changed; please try again in a moment.
