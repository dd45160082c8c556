package stack

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// asset is one zip to upload.
type asset struct {
	what string // for messages: "relay code", "x86_64 layer"
	path string
	data []byte
	key  string
}

// readAsset reads a zip, checks that it is a zip holding the entry want, and names its S3 key by content, so
// that new code changes the template's parameters and CloudFormation updates what depends on it.
func readAsset(what, path, want string) (asset, error) {
	if path == "" {
		return asset{}, fmt.Errorf("no %s zip given", what)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return asset{}, fmt.Errorf("read %s zip: %w", what, err)
	}
	return parseAsset(what, path, want, data)
}

// parseAsset checks that data is a zip holding the entry want.
func parseAsset(what, path, want string, data []byte) (asset, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return asset{}, fmt.Errorf("%s zip %s: not a zip file: %w", what, path, err)
	}
	found := false
	for _, f := range zr.File {
		if f.Name == want {
			found = true
			break
		}
	}
	if !found {
		return asset{}, fmt.Errorf("%s zip %s has no %s", what, path, want)
	}
	sum := sha256.Sum256(data)
	return asset{what: what, path: path, data: data, key: "assets/" + hex.EncodeToString(sum[:]) + ".zip"}, nil
}

// ensureBucket creates the assets bucket unless this account already has it, blocks public access and tags it.
func ensureBucket(ctx context.Context, c clients, bucket, region, name string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
	}
	_, err := c.s3.CreateBucket(ctx, in)
	var owned *s3types.BucketAlreadyOwnedByYou
	var taken *s3types.BucketAlreadyExists
	switch {
	case errors.As(err, &taken):
		return fmt.Errorf("create assets bucket %s: the name belongs to another account", bucket)
	case err != nil && !errors.As(err, &owned):
		return fmt.Errorf("create assets bucket %s: %w", bucket, err)
	}
	if _, err := c.s3.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
		Bucket: aws.String(bucket),
		PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
			BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true),
			IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
		},
	}); err != nil {
		return fmt.Errorf("block public access to bucket %s: %w", bucket, err)
	}
	if _, err := c.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{
		Bucket:  aws.String(bucket),
		Tagging: &s3types.Tagging{TagSet: []s3types.Tag{{Key: aws.String(InstallTag), Value: aws.String(name)}}},
	}); err != nil {
		return fmt.Errorf("tag bucket %s: %w", bucket, err)
	}
	return nil
}

// upload puts an asset unless an object with its (content-addressed) key is already there.
func upload(ctx context.Context, c clients, bucket string, a asset) (bool, error) {
	_, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(a.key)})
	if err == nil {
		return false, nil
	}
	if !isNotFound(err) {
		return false, fmt.Errorf("check %s in bucket %s: %w", a.what, bucket, err)
	}
	if _, err := c.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(a.key), Body: bytes.NewReader(a.data),
		ContentType: aws.String("application/zip"),
	}); err != nil {
		return false, fmt.Errorf("upload %s to s3://%s/%s: %w", a.what, bucket, a.key, err)
	}
	return true, nil
}

func isNotFound(err error) bool {
	var nf *s3types.NotFound
	var nk *s3types.NoSuchKey
	var nb *s3types.NoSuchBucket
	if errors.As(err, &nf) || errors.As(err, &nk) || errors.As(err, &nb) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "NotFound" || ae.ErrorCode() == "NoSuchBucket" || ae.ErrorCode() == "404")
}

// emptyAndDeleteBucket removes every object version and the bucket; a missing bucket is not an error.
func emptyAndDeleteBucket(ctx context.Context, c clients, bucket string) (bool, error) {
	p := s3.NewListObjectVersionsPaginator(c.s3, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if isNotFound(err) {
				return false, nil
			}
			return false, fmt.Errorf("list objects of bucket %s: %w", bucket, err)
		}
		var ids []s3types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, s3types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, s3types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		if len(ids) == 0 {
			continue
		}
		out, err := c.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return false, fmt.Errorf("empty bucket %s: %w", bucket, err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return false, fmt.Errorf("empty bucket %s: delete %s: %s", bucket, aws.ToString(e.Key), aws.ToString(e.Message))
		}
	}
	if _, err := c.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("delete bucket %s: %w", bucket, err)
	}
	return true, nil
}
