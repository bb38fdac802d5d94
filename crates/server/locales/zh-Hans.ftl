# Bursar 页面的简体中文文案。每个键都须同时存在于 en.ftl 和 zh-Hant.ftl。

skip-to-content = 跳到正文
nav-label = 主导航
nav-language = 语言
nav-dashboard = 概览
nav-buy = 购买点数
nav-orders = 订单
nav-transactions = 明细
nav-settings = 设置
nav-merchant = 商家
nav-sign-in = 登录
nav-register = 注册
nav-sign-out = 退出
footer-note = Bursar · 预付点数，每一笔都有账可查
never = 永不过期

home-title = 欢迎
home-heading = 一次充值，处处可用的点数
home-lead = 购买点数，在服务中消费，每一笔进出都清清楚楚。
home-get-started = 创建账户
home-go-dashboard = 进入概览
home-packages = 套餐
home-no-packages = 目前还没有在售的套餐，请稍后再来。
home-buy-this = 购买

field-email = 电子邮箱
field-password = 密码
field-display-name = 昵称（选填）
field-current-password = 当前密码
field-new-password = 新密码
field-language = 语言
field-time-zone = 时区
field-quantity = 数量
field-coupon = 优惠码（选填）

login-title = 登录
login-submit = 登录
login-no-account = 第一次来？
login-forgot = 忘记密码？请在应用中获取一次性登录验证码，登录后在“设置”中设置新密码。
login-wrong = 邮箱或密码不正确。
login-suspended = 此账户已被停用，请联系客服。
login-too-many = 尝试次数过多，请一分钟后再试。

register-title = 创建账户
register-submit = 创建账户
register-have-account = 已有账户？
register-account-type = 账户类型
register-as-member = 会员：购买并使用点数
register-as-merchant = 商家：上架商品，供会员用积分兑换
register-email-invalid = 请输入有效的邮箱地址，例如 name@example.com。
register-email-taken = 此邮箱已注册，请直接登录。
register-password-hint = 至少 8 个字符。
register-password-rule = 密码长度须为 8 至 256 个字符。
register-name-rule = 昵称最多 100 个字符。

dashboard-title = 概览
dashboard-hello = 你好，{ $name }
dashboard-balance = 余额
dashboard-available = 可用点数
dashboard-credits-unit = 点
dashboard-held = 有 { $credits } 点因进行中的付款而冻结
dashboard-grants = 点数来源
dashboard-no-grants = 你还没有点数，购买一个套餐开始吧。
dashboard-recent = 最近动态
dashboard-no-activity = 你的账户还没有任何动态。
dashboard-all-activity = 查看全部明细

col-source = 来源
col-remaining = 剩余
col-expires = 到期时间
col-when = 日期
col-kind = 类型
col-amount = 数额
col-balance-after = 变动后余额
col-item = 商品
col-total = 合计
col-status = 状态

source-purchase = 购买
source-bonus = 赠送
source-allowance = 订阅每日额度
source-gift = 礼物
source-refund = 退款
source-adjustment = 人工调整

kind-purchase = 购买
kind-bonus = 赠送
kind-spend = 消费
kind-refund = 退款
kind-redemption = 兑换
kind-redemption_refund = 兑换退回
kind-allowance = 每日额度
kind-expiry = 过期
kind-gift = 礼物
kind-adjustment = 人工调整
kind-auto_topup = 自动充值
kind-clawback = 退款后扣回

status-pending = 等待付款
status-paid = 已付款
status-failed = 付款失败
status-cancelled = 已取消
status-expired = 已过期
status-refunded = 已退款

provider-sandbox = 测试卡（沙盒）
provider-stripe = 银行卡（Stripe）
provider-alipay = 支付宝
provider-wechatpay = 微信支付
provider-ecpay = 绿界 ECPay
provider-bank_transfer = 银行转账

buy-title = 购买点数
buy-choose-package = 选择套餐
buy-choose-provider = 付款方式
buy-credits-count = { $credits } 点
buy-bonus-count = 赠送 { $credits } 点
buy-check-price = 查看价格
buy-continue = 前往付款
buy-subtotal = 小计
buy-discount = 优惠
buy-total = 合计
buy-you-get = 获得
buy-pick-first = 选择套餐后显示价格。
buy-coupon-unusable = 此优惠码不适用于本订单。
buy-quantity-rule = 数量须在 1 到 1000 之间。
buy-package-missing = 此套餐已下架。
buy-package-required = 请选择套餐。
buy-provider-required = 请选择付款方式。
buy-provider-unusable = 此付款方式不支持本订单。
buy-provider-down = 暂时无法连接付款服务商，未产生任何扣款，请重试。
buy-failed = 订单未能创建，未产生任何扣款，请重试。

orders-title = 我的订单
orders-empty = 你还没有订单。
order-title = 订单
order-provider = 付款方式
order-reason = 原因
order-number = 订单号
order-transfer = 请转账 { $amount }，并在附言中填写参考号 { $reference }。款项确认后点数即到账。
order-transfer-account = 收款账户：{ $account }
order-scan = 扫码付款
order-pay-now = 立即付款
order-receipt = 收据
order-back = 返回订单

receipt-title = 收据 { $number }
receipt-tax-id = 税号 { $id }
receipt-issued = 开具时间 { $when }
receipt-buyer = 付款人 { $email }
receipt-unit-price = 单价
receipt-refunded = 已退款

history-title = 交易明细
history-all-kinds = 全部类型
history-from = 起始日期
history-to = 截止日期
history-filter = 筛选
history-csv = 下载 CSV
history-empty = 没有符合筛选条件的交易。

pager-label = 分页
pager-older = 更早

settings-title = 设置
settings-profile = 个人资料
settings-save = 保存
settings-saved = 设置已保存。
settings-zone-default = 服务默认时区
settings-zone-invalid = 请从列表中选择时区。
settings-password = 密码
settings-password-note = 修改密码后，其他设备上的登录会全部退出。
settings-change-password = 修改密码
settings-current-wrong = 当前密码不正确。
settings-password-saved = 密码已修改，其他会话均已退出。

error-status = 错误 { $status }
error-back = 返回
error-not-found-title = 页面不存在
error-not-found = 此地址没有内容。请检查链接，或从首页重新开始。
error-forbidden-title = 无权访问
error-forbidden = 你的账户无法打开此页面。
error-csrf-title = 表单已失效
error-csrf = 此表单已过期或并非来自本站，因此未做任何更改。请返回、刷新页面后重试。
error-too-large-title = 数据过多
error-too-large = 表单提交的数据超出了本页面的限制。
error-too-many-title = 尝试次数过多
error-too-many = 请一分钟后再试。
error-internal-title = 出了点问题
error-internal = 操作未能完成，也未做任何更改，请稍后重试。
