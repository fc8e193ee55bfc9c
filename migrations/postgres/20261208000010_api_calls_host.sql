-- Which host answered each outbound call (issue 17, "Backup host"): WeChat Pay's client
-- fails over from the configured base to the backup host (api2.mch.weixin.qq.com) after a
-- connect error or an HTTP 5xx, and every attempt is its own row. `url` is the URL called
-- (secrets redacted by the client, as in the bodies); `attempt` is 1 at the configured
-- base, 2 at the backup, 0 for the refund-channel probe. Rows from before have neither:
-- they were all first attempts whose URL was not kept.
alter table api_calls add column url text;
alter table api_calls add column attempt bigint not null default 1;
