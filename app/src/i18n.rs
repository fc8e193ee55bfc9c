//! Chinese first, English switchable. The language is a cookie (`paydesk_lang`) read on the
//! server and mirrored into `<html lang>` so the browser hydrates with the same text; the
//! switcher is a plain link to `/lang/{zh|en}` that sets the cookie and comes back.

use leptos::prelude::*;

pub mod doctor;

/// The cookie holding the chosen language.
pub const LANG_COOKIE: &str = "paydesk_lang";

/// A dashboard language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// 简体中文 (the default: the staff are in China).
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// From a cookie or attribute value; anything unknown is Chinese.
    pub fn from_code(code: &str) -> Lang {
        if code.trim().eq_ignore_ascii_case("en") {
            Lang::En
        } else {
            Lang::Zh
        }
    }

    /// The cookie value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The `<html lang>` value.
    pub fn html_code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language of the current request (server) or page (browser).
    pub fn detect() -> Lang {
        #[cfg(feature = "ssr")]
        {
            use_context::<http::request::Parts>()
                .and_then(|parts| {
                    parts
                        .headers
                        .get_all(http::header::COOKIE)
                        .iter()
                        .find_map(|value| {
                            value.to_str().ok()?.split(';').find_map(|pair| {
                                let (name, value) = pair.trim().split_once('=')?;
                                (name == LANG_COOKIE).then(|| Lang::from_code(value))
                            })
                        })
                })
                .unwrap_or_default()
        }
        #[cfg(not(feature = "ssr"))]
        {
            document()
                .document_element()
                .and_then(|el| el.get_attribute("lang"))
                .map(|code| {
                    if code.starts_with("en") {
                        Lang::En
                    } else {
                        Lang::Zh
                    }
                })
                .unwrap_or_default()
        }
    }
}

/// The language in effect for this page.
pub fn use_lang() -> Lang {
    use_context::<Lang>().unwrap_or_default()
}

/// Declares a message enum: every key with its Chinese and English wording, and `text(lang)`.
/// The shared words live in [`Msg`] below; a page with many words of its own declares its
/// own enum beside it (`crate::messages! { pub enum OrdersMsg { … } }`).
#[macro_export]
macro_rules! messages {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($key:ident => $zh:literal, $en:literal;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name { $(#[doc = $en] $key,)* }

        impl $name {
            /// The wording in `lang`.
            pub fn text(self, lang: $crate::i18n::Lang) -> &'static str {
                match (self, lang) {
                    $(($name::$key, $crate::i18n::Lang::Zh) => $zh, ($name::$key, $crate::i18n::Lang::En) => $en,)*
                }
            }
        }
    };
}

messages! {
/// Every text shared across the dashboard, with its Chinese and English wording.
pub enum Msg {
    AppName => "paydesk 商户后台", "paydesk merchant console";
    SignIn => "登录", "Sign in";
    SignOut => "退出登录", "Sign out";
    SignInTitle => "登录 paydesk", "Sign in to paydesk";
    SignInHint => "使用管理员为您创建的账户登录。", "Use the account your administrator created for you.";
    Username => "用户名", "Username";
    Password => "密码", "Password";
    InvalidCredentials => "用户名或密码错误。", "Invalid username or password.";
    ThrottledPrefix => "登录失败次数过多，请在 ", "Too many failed sign-ins. Try again in ";
    ThrottledSuffix => " 分钟后重试。", " minutes.";
    NavUsers => "用户管理", "Users";
    NavAccount => "我的账户", "My account";
    NavHome => "概览", "Home";
    NavAudit => "审计日志", "Audit log";
    NavReconciliation => "对账", "Reconciliation";
    NavExceptions => "异常", "Exceptions";
    NavSettings => "系统设置", "Settings";
    SandboxBadge => "沙箱 · 非真实资金", "Sandbox · no real money";
    DiskLowPrefix => "磁盘空间不足：数据库所在磁盘仅剩 ", "Low disk space: the database's disk has only ";
    DiskLowSuffix => " 可用。空间用尽时新订单和回调将无法写入（回调会答复 FAIL，微信支付会重发）。请尽快清理磁盘或扩容。", " free. When it runs out, new orders and callbacks cannot be written (callbacks are answered FAIL and WeChat Pay resends them). Free space or grow the disk soon.";
    SandboxBadgeTitle => "paydesk 正连接 WeChat Pay 模拟器或沙箱，而不是微信支付生产环境。", "paydesk is talking to the WeChat Pay simulator or a sandbox, not WeChat Pay production.";
    RoleStaff => "店员", "Staff";
    RoleSupport => "客服", "Support";
    RoleManager => "经理", "Manager";
    RoleAdmin => "管理员", "Admin";
    Loading => "加载中…", "Loading…";
    Forbidden => "无权访问：服务器拒绝了此请求。", "Access denied: the server refused this request.";
    ForbiddenHint => "此页面需要更高的角色权限。如需访问，请联系管理员。", "This page needs a higher role. Ask an administrator if you need access.";
    NotFound => "页面不存在。", "Page not found.";
    InternalError => "服务器内部错误，请稍后重试。", "Internal server error. Please try again later.";
    Busy => "服务繁忙，请稍后再试。", "The server is busy; please try again.";
    TooSoonPrefix => "操作过于频繁，请在 ", "This ran moments ago. Try again in ";
    TooSoonSuffix => " 秒后重试。", " s.";
    PaidByYouNote => "此订单由您本人的 openid 支付：您可以拒绝，但批准须由其他经理进行。", "Paid by one of your own openids: you may reject it, but another manager must approve it.";
    MyOpenids => "我的 openid", "My openids";
    MyOpenidsIntro => "登记您本人在小程序中使用的 openid。由这些 openid 支付的订单，其退款不能由您审批。", "Record the openids you use in the mini program yourself. You cannot approve refunds of orders paid by them.";
    NoOpenids => "尚未登记 openid。", "No openids recorded.";
    AddOpenid => "登记", "Record";
    RemoveOpenid => "删除", "Remove";
    OwnPaymentPrefix => "此订单由您本人登记的 openid ", "This order was paid by ";
    OwnPaymentSuffix => " 支付，不能由您审批退款，请交给其他经理。", ", an openid you recorded as your own: another manager must approve its refund.";
    SessionExpired => "请先登录。", "Please sign in first.";
    UsersTitle => "用户管理", "Users";
    UsersIntro => "管理后台账户与角色。角色依次包含：店员 < 客服 < 经理 < 管理员。", "Manage console accounts and roles. Roles are ordered: staff < support < manager < admin.";
    AddUser => "添加用户", "Add user";
    InitialPassword => "初始密码（至少 10 个字符）", "Initial password (at least 10 characters)";
    Role => "角色", "Role";
    Status => "状态", "Status";
    Active => "启用", "Active";
    Disabled => "已停用", "Disabled";
    LastLogin => "最近登录", "Last sign-in";
    Created => "创建时间", "Created";
    Actions => "操作", "Actions";
    Never => "从未", "Never";
    ChangeRole => "修改角色", "Change role";
    Disable => "停用", "Disable";
    Enable => "启用", "Enable";
    ResetPassword => "重置密码", "Reset password";
    NewPasswordFor => "新的临时密码（只显示这一次）：", "New temporary password (shown only once) for ";
    UserAdded => "已添加用户：", "User added: ";
    Saved => "已保存。", "Saved.";
    You => "（您）", " (you)";
    AccountTitle => "我的账户", "My account";
    ChangePassword => "修改密码", "Change password";
    CurrentPassword => "当前密码", "Current password";
    NewPassword => "新密码（至少 10 个字符）", "New password (at least 10 characters)";
    ConfirmPassword => "确认新密码", "Confirm new password";
    PasswordsDiffer => "两次输入的新密码不一致。", "The new passwords do not match.";
    PasswordChanged => "密码已修改。", "Password changed.";
    RecentActivity => "最近的登录记录", "Recent sign-in activity";
    Time => "时间", "Time";
    Event => "事件", "Event";
    Address => "来源地址", "Address";
    EvLoginSuccess => "登录成功", "Signed in";
    EvLoginFailure => "登录失败", "Failed sign-in";
    EvLoginThrottled => "登录被限流", "Sign-in throttled";
    EvLogout => "退出登录", "Signed out";
    EvPasswordChange => "修改了密码", "Changed password";
    EvOther => "其他", "Other";
    Language => "语言", "Language";
    SignedInAs => "当前用户", "Signed in as";
    TimesNote => "时间均为北京时间（Asia/Shanghai）。", "Times are China Standard Time (Asia/Shanghai).";
    InvalidInput => "输入有误：", "Invalid input: ";
    NavProducts => "商品管理", "Products";
    ProductsTitle => "商品管理", "Products";
    ProductsIntro => "小程序售卖的商品。价格以元填写（如 12.34），下单时由服务器计价；已下的订单保留下单时的价格。", "What the mini program sells. Prices are in yuan (e.g. 12.34) and the server prices every order; existing orders keep the price they were made with.";
    ProductName => "商品名称", "Name";
    Price => "单价", "Price";
    PriceYuan => "单价（元）", "Price (yuan)";
    OnSale => "在售", "On sale";
    OffSale => "已下架", "Off sale";
    Save => "保存", "Save";
    AddProduct => "添加商品", "Add product";
    NavRefunds => "退款审批", "Refunds";
    NavOrders => "订单", "Orders";
    RefundsTitle => "退款审批", "Refunds";
    RefundsIntro => "待审批的退款排在最前。经理或管理员审批，任何人都不能审批自己提交的申请；金额不会超过订单剩余可退金额。", "Requests waiting for approval come first. A manager or admin decides; nobody decides a request they filed, and no refund can exceed what is left on the order.";
    NoRefunds => "暂无退款。", "No refunds yet.";
    OrderNo => "商户订单号", "Order no.";
    Customer => "顾客", "Customer";
    Amount => "金额", "Amount";
    OfTotal => "订单共", "of";
    RefundableLeft => "剩余可退", "Refundable left";
    EarlierRefunds => "此前退款笔数", "Earlier refunds";
    Waiting => "已等待", "Waiting";
    AskedBy => "申请人 / 原因", "Asked by / reason";
    Said => "备注", "noted";
    Retrying => "正在重试", "Retrying";
    Attempts => "次尝试", "attempts";
    DecisionReason => "审批意见", "Reason";
    Approve => "批准", "Approve";
    Reject => "拒绝", "Reject";
    RefundApproved => "已批准退款", "Approved refund";
    RefundRejected => "已拒绝退款", "Rejected refund";
    FileRefund => "代客户申请退款", "File a refund request";
    RefundFiled => "已提交退款申请", "Refund request filed";
    RefundAmountYuan => "退款金额（元）", "Amount (yuan)";
    AllRefundable => "留空 = 全部可退金额", "empty = all that is refundable";
    RefundReason => "退款原因", "Reason";
    RefundChannel => "退款通道", "Refund channel";
    RefundChannelIntro => "用商户证书与微信支付做一次双向 TLS 握手，不发起任何退款。", "A mutual-TLS handshake with WeChat Pay using the merchant certificate. No money moves.";
    CheckChannel => "检查退款通道", "Check refund channel";
    ChannelOk => "退款通道正常", "The refund channel works";
    ChannelBroken => "退款通道不可用", "The refund channel is broken";
    ValidUntil => "有效期至", "valid until";
    NoCertificate => "未配置商户证书", "No merchant certificate configured";
    FailNotEnough => "商户账户可用余额不足：请充值（或等待结算资金到账）后重新申请退款。", "The merchant account has too little available balance: top it up (or wait for settlement), then file the refund again.";
    FailCertificate => "商户证书缺失或不被微信支付认可：检查 PAYDESK_WXPAY__CERT_PEM / __KEY_PEM（或 __P12）是否为本商户号的证书。申请已保留。", "The merchant certificate is missing or not accepted by WeChat Pay: check PAYDESK_WXPAY__CERT_PEM / __KEY_PEM (or __P12) belong to this merchant. The request is kept.";
    FailAccount => "顾客的收款账户异常（如已注销或冻结）：请联系顾客，改用其他方式退款。", "The customer's account cannot receive it (closed or frozen): contact the customer and refund another way.";
    FailTooOften => "请求过于频繁：稍后会自动重试。", "Too many requests: it will be retried later.";
    FailOverdue => "订单已超过可退款期限（通常为一年）：无法原路退回。", "The order is past the refund deadline (usually one year): it cannot go back the original way.";
    FailInvalid => "退款参数被微信支付拒绝（金额或订单号不符）：请核对订单后重新申请。", "WeChat Pay refused the refund's parameters (amount or order number): check the order and file it again.";
    FailMerchantConfig => "商户配置有误（签名、AppID 或商户号）：请管理员检查设置。", "The merchant configuration is wrong (signature, AppID or mch_id): an admin must check the settings.";
    LiveOn => "实时更新中", "Live";
    LiveOff => "实时更新未连接", "Live updates off";
    FailRetrying => "微信支付暂时出错：将用同一退款单号自动重试，不会重复退款。", "A temporary WeChat Pay error: it is retried with the same refund number, never refunded twice.";
    NavNotifications => "通知日志", "Notifications";
    NavFailures => "验签失败", "Verification failures";
    NavLookup => "客服查单", "Lookup";
    NavApiCalls => "接口调用", "API calls";
}
}

/// A role's name in `lang`.
pub fn role_name(role: paydesk_types::Role, lang: Lang) -> &'static str {
    use paydesk_types::Role;
    match role {
        Role::Staff => Msg::RoleStaff,
        Role::Support => Msg::RoleSupport,
        Role::Manager => Msg::RoleManager,
        Role::Admin => Msg::RoleAdmin,
    }
    .text(lang)
}

/// How long ago, in the staff's words: "刚刚", minutes, hours up to two days, then days
/// (the refunds queue and the exceptions inbox).
pub fn age_text(ms: i64, lang: Lang) -> String {
    let minutes = ms / 60_000;
    match (minutes, lang) {
        (0, Lang::Zh) => "刚刚".into(),
        (0, Lang::En) => "just now".into(),
        (m, Lang::Zh) if m < 60 => format!("{m} 分钟"),
        (m, Lang::En) if m < 60 => format!("{m} min"),
        (m, Lang::Zh) if m < 48 * 60 => format!("{} 小时", m / 60),
        (m, Lang::En) if m < 48 * 60 => format!("{} h", m / 60),
        (m, Lang::Zh) => format!("{} 天", m / (24 * 60)),
        (m, Lang::En) => format!("{} days", m / (24 * 60)),
    }
}
