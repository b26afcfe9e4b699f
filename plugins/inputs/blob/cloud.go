//go:build !nocloud

package blob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"strconv"
	"strings"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
	gcaws "gocloud.dev/aws"
	gocloud "gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://
	_ "gocloud.dev/blob/gcsblob"   // gs://
	"gocloud.dev/blob/s3blob"
	"google.golang.org/api/googleapi"
)

// The cloud drivers are linked unless built with -tags nocloud; the README
// says what they cost.

func init() {
	openers["s3"] = openS3
	rawNames = append(rawNames,
		func(o *gocloud.ListObject) (string, bool) {
			var obj types.Object
			if !o.As(&obj) || obj.Key == nil {
				return "", false
			}
			return path.Base(*obj.Key), true
		},
		func(o *gocloud.ListObject) (string, bool) {
			var attrs storage.ObjectAttrs
			if !o.As(&attrs) {
				return "", false
			}
			return path.Base(attrs.Name), true
		},
		func(o *gocloud.ListObject) (string, bool) {
			var item container.BlobItem
			if !o.As(&item) || item.Name == nil {
				return "", false
			}
			return path.Base(*item.Name), true
		},
	)
	statusCodes = append(statusCodes,
		func(err error) (int, bool) {
			var e *googleapi.Error
			if errors.As(err, &e) {
				return e.Code, true
			}
			return 0, false
		},
		func(err error) (int, bool) {
			var e *azcore.ResponseError
			if errors.As(err, &e) {
				return e.StatusCode, true
			}
			return 0, false
		},
	)
}

// openS3 opens an s3:// URL with the parameters gocloud's own opener takes,
// with three differences: the SDK logs through the plugin's logger instead
// of standard error, it does not warn about every object stored without a
// checksum (most uploaders store none), and AWS_MAX_ATTEMPTS is honoured.
func openS3(ctx context.Context, u *url.URL, log *slog.Logger) (*gocloud.Bucket, error) {
	q := u.Query()
	take := func(k string) string {
		v := q.Get(k)
		q.Del(k)
		return v
	}
	var opts s3blob.Options
	if v := take("ssetype"); v != "" {
		for _, t := range types.ServerSideEncryptionAes256.Values() {
			if strings.EqualFold(string(t), v) {
				opts.EncryptionType = t
			}
		}
		if opts.EncryptionType == "" {
			return nil, fmt.Errorf("%q is not a valid value for ssetype", v)
		}
	}
	opts.KMSEncryptionID = take("kmskeyid")
	var clientOpts []func(*s3.Options)
	for _, k := range []string{"accelerate", "disable_https", "use_path_style", "s3ForcePathStyle"} {
		v := take(k)
		if v == "" {
			continue
		}
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("invalid value for %q: %w", k, err)
		}
		clientOpts = append(clientOpts, func(o *s3.Options) {
			switch k {
			case "accelerate":
				o.UseAccelerate = on
			case "disable_https":
				o.EndpointOptions.DisableHTTPS = on
			default:
				o.UsePathStyle = on
			}
		})
	}
	cfg, err := gcaws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, err
	}
	// gocloud sets its own retryer, which hides the standard setting.
	if env, err := config.NewEnvConfig(); err == nil && env.RetryMaxAttempts > 0 {
		cfg.RetryMaxAttempts = env.RetryMaxAttempts
	}
	cfg.Logger = sdkLogger{log}
	clientOpts = append(clientOpts, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	client := s3.NewFromConfig(cfg, clientOpts...)
	opts.RequestChecksumCalculation = cfg.RequestChecksumCalculation
	return s3blob.OpenBucket(ctx, client, u.Host, &opts)
}

// sdkLogger passes the AWS SDK's log lines to slog.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	l.log.Log(context.Background(), level, "AWS SDK: "+fmt.Sprintf(format, v...))
}
